"""instantaneous_ops_per_sec: the mean of the last 16 rates sampled every 100 ms."""

from dynredis.server.opsrate import SAMPLES, OpsRate


def test_the_rate_is_the_mean_of_the_sampled_rates_and_resets() -> None:
    rate = OpsRate()
    rate.sample(1000.0, 0)
    rate.sample(1050.0, 500)  # too soon: no sample
    assert rate.per_sec() == 0
    rate.sample(1100.0, 1000)  # 1000 commands in 100 ms
    assert rate.per_sec() == 10000 // SAMPLES
    for i in range(2, SAMPLES + 2):
        rate.sample(1000.0 + 100 * i, 1000 * i)
    assert rate.per_sec() == 10000
    rate.reset()
    assert rate.per_sec() == 0
