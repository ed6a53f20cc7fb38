"""The robustness track: score a finished run's method on post-processed copies of its test images.

``perturbations``: the perturbations (JPEG, resize, blur, noise, crop) and the ``--perturb`` spec;
``evaluate``: restoring a run's method and scoring every perturbation into ``robustness.json``;
``cli``: the ``osma-bench robustness`` command. docs/ROBUSTNESS.md describes each perturbation.
"""

#: The file a robustness pass writes beside a run's metrics.json, and its schema version.
ROBUSTNESS_FILE = "robustness.json"
SCHEMA_VERSION = 1
