"""`python -m worker.influence TRAIN ...` runs `prefaudit score`."""

from worker.influence.cli import main

main()
