import sys

from unifmir.cli import main

sys.exit(main())
