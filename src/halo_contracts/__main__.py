import sys

from halo_contracts.cli import main

sys.exit(main())
