"""``python -m snn ...`` runs the ``snn`` command (like ``python -m torch.distributed.run``)."""
import sys

from snn.cli.main import main

sys.exit(main())
