from canvas_app.cli import main

raise SystemExit(main())
