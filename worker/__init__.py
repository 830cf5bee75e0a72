"""Running jobs: the Celery app, the job runner, progress publishing, periodic tasks.

Analyses run one per process, so the BLAS libraries under numpy get one thread each. The
variables are set here, before any worker process imports numpy (the Celery worker imports this
package first; the embedded fork server inherits them from the web process): a BLAS that starts
its own threads inside an analysis would do so under the job's memory ceiling
(worker/limits.py), and OpenBLAS does not survive a thread it could not create.
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
