"""The distributed domain: ``backtest_celery_job``, the backtest assets on Celery worker nodes.
The Celery app, worker bootstrap, broker, queues and executor stay in btpipeline.distributed."""
