"""``python -m stlspec.llm``: show the generated prompt, or ``--refresh`` the language snapshot."""

from stlspec.llm.prompt import _main

raise SystemExit(_main())
