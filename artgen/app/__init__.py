"""The application layer: the `artgen` command line, the demo, the release step, the HTTP
server and the in-browser page. It imports the library (and annotate, bench, export); the
library never imports it."""
