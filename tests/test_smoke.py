import sunbeam_agent
import sunbeam_api


def test_platform_packages_import() -> None:
    assert sunbeam_agent.__doc__ and sunbeam_api.__doc__
