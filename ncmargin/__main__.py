from ncmargin.cli import main

raise SystemExit(main())
