from altseason.cli import main

raise SystemExit(main())
