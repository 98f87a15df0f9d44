from adaptrun.cli import main

main()
