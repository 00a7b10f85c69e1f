"""1B.S7: nearest-city distance on the sphere."""

import numpy as np
import polars as pl
import pytest

from engine.segments.l1.s1b.s7_synthesis import nearest_city_km


def test_nearest_city_distance_is_great_circle() -> None:
    cities = pl.DataFrame({"lon": [0.0, 179.9], "lat": [0.0, 0.0]})
    d = nearest_city_km(np.array([1.0, -179.9]), np.array([0.0, 0.0]), cities)
    assert d[0] == pytest.approx(111.195, rel=1e-4)  # 1° of arc on the mean sphere
    assert d[1] == pytest.approx(22.239, rel=1e-3)  # across the antimeridian, not 359.8°
