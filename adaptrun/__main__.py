from adaptrun.cli.main import main

main()
