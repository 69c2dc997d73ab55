"""``GET /v1/jobs/{id}``: progress of a table build; ``DELETE /v1/jobs/{id}``: cancel it."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, HTTPException, Request, status

from latency_server.api.deps import BearerDep, ServiceDep, SettingsDep, token_accepted
from latency_server.worker.jobs import Job
from shared.api_schemas import ErrorResponse, JobStatus

router = APIRouter(prefix="/v1", tags=["jobs"])


def _job(service: ServiceDep, job_id: str) -> Job:
    job = service.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, detail=f"job_id: no job {job_id[:64]!r} on this server (jobs live in memory; "
                            "finished ones expire)")
    return job


def _status(job: Job) -> JobStatus:
    return JobStatus(id=job.id, state=job.state, done=job.done, total=job.total, error=job.error, reason=job.reason,
                     request_id=job.request_id)


def _loopback(request: Request) -> bool:
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


@router.get("/jobs/{job_id}", response_model=JobStatus,
            responses={404: {"model": ErrorResponse, "description": "no such job on this server process"}})
async def get_job(job_id: str, service: ServiceDep) -> JobStatus:
    """State, progress and error of a job started by this server process (finished jobs expire); a failed job
    gives a reason code and a request id, under which the server log has the details."""
    return _status(_job(service, job_id))


@router.delete("/jobs/{job_id}", response_model=JobStatus, responses={
    401: {"model": ErrorResponse, "description": "a token is configured and the request lacks it"},
    403: {"model": ErrorResponse, "description": "no token is configured and the caller is not on loopback"},
    404: {"model": ErrorResponse, "description": "no such job on this server process"},
    409: {"model": ErrorResponse, "description": "the job has ended already"},
})
async def cancel_job(job_id: str, service: ServiceDep, settings: SettingsDep, credentials: BearerDep,
                     request: Request) -> JobStatus:
    """Cancel a table build: its steps not started leave the queue, the job shows ``cancelled``; figures
    already stored stay (a later build measures only what is missing). The step running now finishes.

    Needs ``Authorization: Bearer <token>`` when the server has a token; without one, only callers on
    loopback may cancel."""
    if settings.token is not None and settings.token.get_secret_value():
        if not token_accepted(settings, credentials):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"},
                                detail="Authorization: a valid 'Bearer <token>' header is required to cancel a job")
    elif not _loopback(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="job_id: without a server token only callers on "
                            "loopback may cancel jobs (set LATENCY_SERVER_TOKEN)")
    job = _job(service, job_id)
    if not job.cancel() and job.state != "cancelled":
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"job_id: the job has ended already ({job.state})")
    return _status(job)
