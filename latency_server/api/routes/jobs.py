"""``GET /v1/jobs/{id}``: progress of a table build."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from latency_server.api.deps import ServiceDep
from shared.api_schemas import ErrorResponse, JobStatus

router = APIRouter(prefix="/v1", tags=["jobs"])


@router.get("/jobs/{job_id}", response_model=JobStatus,
            responses={404: {"model": ErrorResponse, "description": "no such job on this server process"}})
async def get_job(job_id: str, service: ServiceDep) -> JobStatus:
    """State, progress and error of a job started by this server process (finished jobs expire); a failed job
    gives a reason code and a request id, under which the server log has the details."""
    job = service.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, detail=f"job_id: no job {job_id[:64]!r} on this server (jobs live in memory; "
                            "finished ones expire)")
    return JobStatus(id=job.id, state=job.state, done=job.done, total=job.total, error=job.error, reason=job.reason,
                     request_id=job.request_id)
