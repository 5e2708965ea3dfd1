"""The model servers (KServe): one model class per server, settings, tensors, batching, reload."""
