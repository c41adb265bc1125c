"""The metadata store: SQL tables, migrations, and the backends chosen by URI."""
