"""Object storage shared by every part that reads or writes ``s3://`` locations (MinIO in the
cluster): the ``minio`` client from the MINIO_* settings, URI parsing, fetching an object or a
prefix to a local folder, and small-object put/get/list. It knows no model, study or provider."""
