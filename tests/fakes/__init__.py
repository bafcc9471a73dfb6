"""Protocol-faithful fake services for tests, served with tests.live.LiveASGIServer."""
