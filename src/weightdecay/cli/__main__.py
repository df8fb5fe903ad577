import sys

from weightdecay.cli import main

sys.exit(main())
