"""Pure parsers: text in, data out. They know no file names; the host layer adds the source."""
