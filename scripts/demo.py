#!/usr/bin/env python3
"""``make demo``: a range map of one species with the bundled model, through ``sinr:predict_range``.

Runs the plugin's own Processing algorithm in a standalone (headless) QgsApplication, writes
``out/demo/<Species_name>.tif`` (Float32 COG + .qml style) and a PNG preview rendered from the
styled layer by QGIS's map renderer, and prints both paths.

    .venv/bin/python scripts/demo.py --species "Acer rubrum"
    .venv/bin/python scripts/demo.py --species "Quercus alba" --extent=-100,-60,24,50 --pixel-size 0.05
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

EASTERN_NORTH_AMERICA = "-100,-60,24,50"  # xmin,xmax,ymin,ymax in degrees: the Great Plains to the Atlantic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--species", default="Acer rubrum", help="code or scientific name (default: Acer rubrum)")
    p.add_argument("--model", default="", help="a .sinr bundle (default: the bundled model)")
    p.add_argument("--extent", default=EASTERN_NORTH_AMERICA,
                   help="xmin,xmax,ymin,ymax in --crs units (default: eastern North America)")
    p.add_argument("--crs", default="EPSG:4326", help="CRS of the extent and of the output (default EPSG:4326)")
    p.add_argument("--pixel-size", type=float, default=0.1, help="in CRS units (default 0.1 degree)")
    p.add_argument("--out", default=str(ROOT / "out" / "demo"), help="output folder (default out/demo)")
    p.add_argument("--png-width", type=int, default=1000, help="preview width in pixels")
    return p.parse_args(argv)


def start_qgis():
    """A headless QgsApplication with Processing and the plugin's provider."""
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    from sinr_qgis.processing.provider import SinrProvider
    from sinr_qgis.toolbelt.log import setup_logging

    setup_logging()
    provider = SinrProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    return app, provider


def render_png(tif: Path, png: Path, width: int) -> Path:
    """Render the prediction, styled as the plugin styles it, over white; the same aspect as the raster."""
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    from sinr_qgis.qgis_bridge.layers import load_raster, style_probability_layer

    layer = load_raster(tif, tif.stem)
    style_probability_layer(layer)
    extent = layer.extent()
    height = max(1, round(width * extent.height() / extent.width()))
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(width, height))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    if not job.renderedImage().save(str(png), "PNG"):
        raise OSError(f"could not write {png}")
    return png


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app, _provider = start_qgis()
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    from sinr_qgis.core.file_names import safe_file_stem

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = safe_file_stem(args.species.strip())  # readable in any script: "Ель сибирская" -> Ель_сибирская
    tif = out_dir / f"{slug}.tif"

    class PrintFeedback(QgsProcessingFeedback):
        def pushInfo(self, text: str) -> None:
            print(text, flush=True)

        def pushWarning(self, text: str) -> None:
            print("Warning:", text, flush=True)

    params = {"MODEL": args.model, "SPECIES": args.species, "EXTENT": f"{args.extent} [{args.crs}]",
              "PIXEL_SIZE": args.pixel_size, "MASK_OCEAN": True, "THRESHOLD": 0, "OUTPUT": str(tif)}
    print(f"Running sinr:predict_range for {args.species!r} ...", flush=True)
    try:
        result = processing.run("sinr:predict_range", params, feedback=PrintFeedback())
    except QgsProcessingException as exc:
        print(f"Error: {exc}", file=sys.stderr)
        app.exitQgis()
        return 1
    png = render_png(Path(result["OUTPUT"]), tif.with_suffix(".png"), args.png_width)
    print(f"GeoTIFF: {result['OUTPUT']}")
    print(f"Style:   {tif.with_suffix('.qml')}")
    print(f"Preview: {png}")
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
