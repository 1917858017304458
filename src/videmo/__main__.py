from videmo.cli import entry

entry()
