"""``python -m gankit``: the command line, as torchrun launches it
(``torchrun --nproc-per-node N -m gankit run RECIPE``)."""

import sys

from gankit.cli import main

sys.exit(main())
