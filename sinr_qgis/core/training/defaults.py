"""The training vocabulary, defined once: loss names, negatives, defaults, exit codes.

Read by the CLI's argparse (``training/cli.py``), the trainer's ``TrainConfig``
(``training/trainer.py``), the losses (``training/losses.py``) and the plugin's supervisor and
forms. ``training`` imports it from ``core``, the direction the arrows allow. Pure Python.
"""
from __future__ import annotations

from typing import Any

# the losses of the paper (reference section 3.2), as the CLI names them (training/losses.py)
LOSSES = ("an_full", "an_ssdl", "an_slds", "me_full", "me_ssdl", "gp")
LOSS_LABELS = {
    "an_full": "Assume negative, full (AN-full)",
    "an_ssdl": "Assume negative, same species (AN-SSDL)",
    "an_slds": "Assume negative, same location (AN-SLDS)",
    "me_full": "Maximum entropy, full (ME-full)",
    "me_ssdl": "Maximum entropy, same species (ME-SSDL)",
    "gp": "Generative / pseudo-absence (GP)",
}
# One line per loss for the dialog and the help: what it takes as absences (training/losses.py).
LOSS_HELP = {
    "an_full": "Assume negative, full: at each record's place every other species, and at random places every "
               "species, count as absent; the presence weighs lambda. The paper's best and the bundled model's.",
    "an_ssdl": "Assume negative, same species: each record's species counts as absent at one random place; "
               "other species' records are never used as absences.",
    "an_slds": "Assume negative, same location: at each record's place one other species, drawn at random, "
               "counts as absent; no random places.",
    "me_full": "Maximum entropy, full: AN-full, but the assumed absences pull a score towards 'unknown' (0.5) "
               "instead of towards 0.",
    "me_ssdl": "Maximum entropy, same species: AN-SSDL, with the random places pulling towards 'unknown' "
               "instead of 0.",
    "gp": "Generative / pseudo-absence (Mac Aodha et al. 2019): AN-full with lambda fixed to the number of "
          "species.",
}
# losses with negatives at observed locations (they read the losses' neg_mask): where the
# source-aware negatives act; the CLI refuses --negatives other than "all" for the others
USES_NEG_MASK = frozenset({"an_full", "me_full", "gp", "an_slds"})
# which species a record speaks against at its location (training/negatives.py); the paper: all
NEGATIVES = ("all", "source", "site", "source_site")
# where random pseudo-negatives are drawn: the whole sphere (the paper) or land
PSEUDO_NEGATIVES = ("sphere", "land")

# The paper's recipe (Cole et al. 2023 and its code): the defaults of the CLI and of TrainConfig.
PAPER_RECIPE: dict[str, Any] = {
    "loss": "an_full", "cap": 1000, "epochs": 10, "batch_size": 2048, "lr": 5e-4,
    "lr_decay": 0.98,  # ExponentialLR, stepped per epoch
    "width": 256, "depth": 4, "dropout": 0.5, "seed": 0, "pos_weight": 2048.0, "min_records": 1,
    "encoding": "sin_cos", "negatives": "all", "pseudo_negatives": "sphere",
}
# What the dialog and the algorithm show before the user changes anything: the recipe of the
# bundled model (its model card, ``resources.BUNDLED.card``; a test checks it against the bundle's
# model.json): AN-full with lambda = the number of species, no per-species cap, 20 epochs, random
# absences on land, the paper's network on spherical harmonics (the CLI's default degree, 10),
# and local evidence (coordinates models only). With a source column, source-aware negatives are
# added (``TrainOptions.negatives``).
DEFAULTS: dict[str, Any] = {key: PAPER_RECIPE[key] for key in (
    "loss", "cap", "epochs", "width", "depth", "seed", "min_records", "batch_size", "pos_weight",
    "pseudo_negatives")} | {"cap": 0, "epochs": 20, "pos_weight": "species", "pseudo_negatives": "land",
                            "encoding": "spherical_harmonics", "local_evidence": True}

# the training CLI's exit statuses, as its supervisor reads them
EXIT_OK = 0
EXIT_CANCELLED = 1  # a cancel event: the run stopped on request
EXIT_USER_ERROR = 2  # bad files, columns or options: one ``error:`` line names what to change
EXIT_INTERRUPTED = 130  # Ctrl+C (128 + SIGINT); the last completed epoch is in the checkpoint
