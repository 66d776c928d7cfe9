"""core.official_import without QGIS: what is refused before the child runs, and what the child's
failures become (fake interpreters: shell scripts standing in for the training Python)."""
from __future__ import annotations

import pickle
import zipfile

import pytest

from sinr_qgis.core.errors import CheckpointImportError, OutputError, TrainingCrashError, TrainingEnvironmentError
from sinr_qgis.core.official_import import check_checkpoint_file, import_official_checkpoint


def fake_python(path, script: str):
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def torch_zip(path):
    with zipfile.ZipFile(path, "w") as zf:  # torch.save's container: <name>/data.pkl and tensors
        zf.writestr("model/data.pkl", b"\x80\x02}q\x00.")
    return path


def test_checkpoint_containers_are_told_apart_without_unpickling(tmp_path):
    assert check_checkpoint_file(torch_zip(tmp_path / "new.pt")) == tmp_path / "new.pt"
    (tmp_path / "legacy.pt").write_bytes(pickle.dumps({"a": 1}, protocol=2))  # torch's format before 1.6
    assert check_checkpoint_file(tmp_path / "legacy.pt") == tmp_path / "legacy.pt"
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as zf:
        zf.writestr("a.jpg", b"jpeg")
    for name, message in (("photos.zip", "photos.zip is not a PyTorch checkpoint"),
                          ("none.pt", "Checkpoint .*none.pt does not exist")):
        with pytest.raises(CheckpointImportError, match=message):
            check_checkpoint_file(tmp_path / name)


def test_a_crashing_converter_is_reported_with_its_last_lines(tmp_path):
    python = fake_python(tmp_path / "python3", "echo 'Illegal instruction in libtorch' >&2\nexit 132\n")
    with pytest.raises(TrainingCrashError, match=r"The import process exited with status 132\. Last lines of its "
                                                 r"error output:\nIllegal instruction in libtorch"):
        import_official_checkpoint(torch_zip(tmp_path / "m.pt"), tmp_path / "out.sinr", python)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "python3"]  # no bundle, no lock, no .part


def test_the_converters_refusal_is_its_one_line(tmp_path):
    python = fake_python(tmp_path / "python3", "echo '{\"event\": \"progress\", \"progress\": 0.3}'\n"
                                               "echo '{\"event\": \"error\", \"message\": \"m.pt: bad head\"}'\n"
                                               "echo 'error: m.pt: bad head' >&2\nexit 2\n")
    seen = []
    with pytest.raises(CheckpointImportError, match=r"^m.pt: bad head$"):
        import_official_checkpoint(torch_zip(tmp_path / "m.pt"), tmp_path / "out", python, on_progress=seen.append)
    assert seen == [30.0]


def test_inputs_are_checked_before_anything_runs(tmp_path, read_only_folder):
    ck = torch_zip(tmp_path / "m.pt")
    with pytest.raises(CheckpointImportError, match=r"Names table .*names\.txt does not exist"):
        import_official_checkpoint(ck, tmp_path / "o.sinr", "python3", taxa=tmp_path / "names.txt")
    with pytest.raises(TrainingEnvironmentError, match=r"The Python interpreter '/nowhere/python' was not found\. "
                                                       r".*'Set up PyTorch for me'"):
        import_official_checkpoint(ck, tmp_path / "o.sinr", "/nowhere/python")
    with pytest.raises(OutputError, match=r"o\.sinr"):
        import_official_checkpoint(ck, read_only_folder / "o.sinr", "python3")
