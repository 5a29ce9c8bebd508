"""A reusable reply's {称呼} becomes the citizen's own name in the message sent to them."""

from intake.handlers import addressed


def test_the_name_placeholder_is_the_citizens_name_or_you() -> None:
    assert addressed("{称呼}您好，事项已办结。", "王芳") == "王芳您好，事项已办结。"
    assert addressed("{称呼}您好", "  ") == "您好"
    assert addressed("没有称呼", None) == "没有称呼"
