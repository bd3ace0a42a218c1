"""The request pipeline's shape (pipeline.py): its stages in order, the first refusal ending it."""

from assure_local import pipeline


def test_the_stages_run_in_the_documented_order() -> None:
    names = [stage.__name__ for stage in pipeline.STAGES]
    assert names == ["latency", "rate_limit", "fault", "region_enabled", "authorize", "validate"]


def test_the_first_refusal_ends_the_request() -> None:
    ran: list[str] = []

    def passes(req: pipeline.Request) -> pipeline.Answer:
        ran.append("passes")
        return None

    def refuses(req: pipeline.Request) -> pipeline.Answer:
        ran.append("refuses")
        return [b"refused"]

    def never(req: pipeline.Request) -> pipeline.Answer:
        ran.append("never")
        return None

    req = pipeline.Request(app=None, environ={}, start_response=lambda *a: None, cred=None, client_call=True)  # type: ignore[arg-type]
    assert pipeline.run(req, (passes, refuses, never)) == [b"refused"]
    assert ran == ["passes", "refuses"]
    assert pipeline.run(req, (passes,)) is None


def test_a_body_read_by_a_stage_is_there_for_the_next() -> None:
    import io

    environ = {"CONTENT_LENGTH": "5", "wsgi.input": io.BytesIO(b"hello")}
    req = pipeline.Request(app=None, environ=environ, start_response=lambda *a: None, cred=None, client_call=True)  # type: ignore[arg-type]
    assert req.body() == b"hello"
    assert req.body() == b"hello"
