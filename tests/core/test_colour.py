import numpy as np
import pytest

from canvas_app.core.colour import ciede2000, mean_delta_e, psnr, srgb_to_lab

# Pairs and expected differences from Sharma, Wu and Dalal (2005), table 1.
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((50.0, 2.5, 0.0), (50.0, 0.0, -2.5), 4.3065),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


@pytest.mark.parametrize(("lab1", "lab2", "expected"), SHARMA)
def test_ciede2000_matches_the_published_test_data(lab1, lab2, expected):
    assert ciede2000(np.array(lab1), np.array(lab2)) == pytest.approx(expected, abs=1e-4)
    assert ciede2000(np.array(lab2), np.array(lab1)) == pytest.approx(expected, abs=1e-4)


def test_srgb_to_lab_known_colours():
    lab = srgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [128, 128, 128]]))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)
    assert abs(lab[3, 1]) < 0.01 and abs(lab[3, 2]) < 0.01  # grey has no hue


def test_a_pink_tint_on_grey_that_psnr_rates_30_db_is_a_visible_colour_error():
    # Why both numbers are reported: a uniform tint costs little PSNR but is plain to see.
    grey = np.full((8, 8, 3), 128, np.uint8)
    pink = grey.copy()
    pink[..., 0] += 12
    pink[..., 2] += 6
    assert mean_delta_e(grey, grey) == 0
    assert mean_delta_e(grey, pink) > 3
    assert psnr(grey, grey) > 90 and 29 < psnr(grey, pink) < 31
