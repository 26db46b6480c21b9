import pytest


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train far faster on one thread, above all on a busy machine (torch, and the
    OpenMP pool of scikit-learn's histogram gradient boosting)."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)
