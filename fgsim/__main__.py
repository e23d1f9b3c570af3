from fgsim.cli import main

raise SystemExit(main())
