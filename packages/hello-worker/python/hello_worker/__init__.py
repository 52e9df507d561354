"""hello-worker: an example application component with a background worker thread."""
