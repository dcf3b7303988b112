"""prefaudit's benchmarks: the experiments (`python -m bench.<name>`) and their library (lib/)."""

import os

# Offline: models come from installed packages and local caches. Set here, before any experiment
# imports transformers (it reads these once, on import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
