from konifer_edge.cli import main

raise SystemExit(main())
