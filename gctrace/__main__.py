from gctrace.cli import main

main()
