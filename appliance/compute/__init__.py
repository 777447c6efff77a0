"""Where the offline work runs, shared by corpus/ and generator/ (below both, importing neither):
the local process pool (`pool`), the Dask session (`dask_session`) and the models each worker
loads once (`worker_cache`)."""
