import os
import sys

from .trainer import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # Under torchrun a rank can abort after a clean finish ("terminate called without an active exception",
    # SIGABRT with no Python frame: a C++ destructor of the gloo process group at interpreter exit), and the
    # launcher then reports the whole job as failed. Every checkpoint and log line is written and flushed by
    # now, so leave without running the C++ static destructors.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
