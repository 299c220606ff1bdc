"""`flask outbox`: contact, run --once, list and retry; bad input is a message and exit 1, never a traceback."""
from __future__ import annotations

from tests.gateways import Gateway, channel_config
from tests.support import Driver


def test_outbox_commands(app, rt, demo):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["outbox", "contact", "unit", "YC-CGJ", "--phone", "13900001111"])
    assert result.exit_code == 0 and "13900001111" in result.output
    Driver.start(rt).to_signing()
    with Gateway() as gateway:
        app.config.update(channel_config(gateway, OUTBOX_QUIET_HOURS="off"))
        result = runner.invoke(args=["outbox", "run", "--once"])
        # the citizen's tracking code and the routed unit's arrival notice
        assert result.exit_code == 0 and "'sent': 2" in result.output, result.output
        assert len(gateway.sms()) == 2
    result = runner.invoke(args=["outbox", "list", "--status", "sent"])
    assert result.exit_code == 0 and "arrival" in result.output and "sent" in result.output
    message_id = result.output.split()[0]
    result = runner.invoke(args=["outbox", "retry", message_id])
    assert result.exit_code == 1 and "only failed or dead messages are retried" in result.output
    assert "Traceback" not in result.output


def test_outbox_commands_refuse_bad_input_by_name(app, demo):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["outbox", "contact", "unit", "YC-CGJ", "--email", "not-an-address"])
    assert result.exit_code == 1 and "email: must be an e-mail address" in result.output
    result = runner.invoke(args=["outbox", "contact", "unit", "NO-SUCH-UNIT", "--phone", "13900001111"])
    assert result.exit_code == 1 and "unit NO-SUCH-UNIT does not exist" in result.output
    result = runner.invoke(args=["outbox", "retry", "424242"])
    assert result.exit_code == 1 and "outbox message 424242 does not exist" in result.output
    result = runner.invoke(args=["outbox", "list", "--status", "lost"])
    assert result.exit_code == 1 and "unknown status 'lost'" in result.output
    app.config["OUTBOX_QUIET_HOURS"] = "10pm-8am"
    result = runner.invoke(args=["outbox", "run", "--once"])
    assert result.exit_code == 1 and "HH:MM-HH:MM" in result.output
