#!/usr/bin/env python3
"""Launches the Python adapters (cuframes.adapters.pub / .sub) from a checkout, for manifests:

    python3 python/tools/adapter.py pub|sub ARGS...

It runs the package of the checkout this file lives in when its C extensions are built there
(`pip install -e python`), and otherwise the installed `cuframes` package, so that a manifest
tests the code next to it. Manifests start it with `python3 -S`: skipping `site` (and the .pth
files of every installed package) shortens the start-up that the harness's deadlines count;
`site` is loaded here only when the installed package is needed."""
import os
import sys

src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if any(n.startswith("_atomics") and n.endswith(".so")
       for n in os.listdir(os.path.join(src, "cuframes"))):
    sys.path.insert(0, src)
elif "site" not in sys.modules:
    import site

    site.main()

role = sys.argv[1] if len(sys.argv) > 1 else ""
if role == "pub":
    from cuframes.adapters.pub import main
elif role == "sub":
    from cuframes.adapters.sub import main
else:
    sys.stderr.write("usage: adapter.py pub|sub ARGS...\n")
    sys.exit(1)
sys.exit(main(sys.argv[2:]))
