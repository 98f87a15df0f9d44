from adaptrun.report.cli import main

main()
