"""Running the study's analysis from the web app: the same calls as ``alliance analyze --study``.

:func:`run_study_analysis` exports the stored study (:func:`alliance.web.capture.storage.export_study`),
runs its analysis plan (:func:`alliance.analysis.run_analysis`) and writes ``results.json``,
``report.html``, ``report.pdf`` and the figures (:func:`alliance.report.write_report`) into
``$ALLIANCE_DATA_DIR/analysis/study-<id>/run-<n>/``. Each run is an :class:`AnalysisRun` row,
created and finished with audit events. It runs synchronously in the request that asks for it:
for a trial-sized study that takes seconds to a minute.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from alliance.analysis import run_analysis
from alliance.report import write_report
from alliance.web.capture.recording import user_log
from alliance.web.capture.storage import export_study

from .dashboards import analysis_dir
from .models import AnalysisRun

# A run still marked "running" after this long died with its process; it no longer blocks.
STALE_AFTER = timedelta(hours=2)


class AnalysisBusy(RuntimeError):
    """An analysis of this study is running already."""


def run_study_analysis(study, user) -> AnalysisRun:
    """Run the study's analysis plan on the stored data and write the report.

    Parameters
    ----------
    study : alliance.web.capture.models.Study
    user : User
        Who asked (recorded on the run and in the audit trail).

    Returns
    -------
    AnalysisRun
        ``status`` done (with ``seconds``, ``n_participants``) or failed (with ``error``).

    Raises
    ------
    AnalysisBusy
        When another run of the study started less than two hours ago and has not finished.
    """
    with transaction.atomic():
        busy = (AnalysisRun.objects.select_for_update()
                .filter(study=study, status=AnalysisRun.Status.RUNNING,
                        started_at__gte=timezone.now() - STALE_AFTER).first())
        if busy is not None:
            raise AnalysisBusy(f"an analysis of {study.name} has been running since "
                               f"{timezone.localtime(busy.started_at):%H:%M} {timezone.get_current_timezone_name()}; "
                               "wait for it to finish")
        run = AnalysisRun.objects.create(study=study, started_by=user, output_dir="")
        run.output_dir = str(analysis_dir(study) / f"run-{run.pk}")
        run.save(update_fields=["output_dir"])
        log = user_log(user, study)
        log.created(run, {"status": run.status, "output_dir": run.output_dir}, label=str(run))
        log.write()
    started = time.perf_counter()
    try:
        trial = export_study(study.name)
        results = run_analysis(trial)
        write_report(trial, results, run.output_dir)
    except Exception as error:  # any failure is reported on the run and shown to the user
        run.status, run.error = AnalysisRun.Status.FAILED, f"{type(error).__name__}: {error}"[:5000]
    else:
        run.status, run.n_participants = AnalysisRun.Status.DONE, len(trial.participants)
    run.seconds = time.perf_counter() - started
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save(update_fields=["status", "error", "n_participants", "seconds", "finished_at"])
        log = user_log(user, study)
        log.changed(run, {"status": AnalysisRun.Status.RUNNING.value},
                    {"status": run.status, "error": run.error, "n_participants": run.n_participants}, label=str(run))
        log.write()
    return run
