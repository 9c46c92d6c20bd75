"""A contactless fingertip photo -> a contact-like 500 ppi impression, tip up.

Stages (each measured on RidgeBase and the lab set, see the README's contactless section):
finger mask (skin colour or brightness, Otsu) -> long axis and tip end -> ridge period by
FFT, which sets the scale to 500 ppi (cross-checked with the finger's width) -> one affine
warp (rotate tip-up, scale, mirror to the contact-scanner view) -> illumination flattening,
CLAHE, polarity inversion (ridges bright in a photo, dark in a print), background white.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Ridge period of contact prints at 500 ppi as this module's estimator measures it (median
# over the RidgeBase contact prints and FVC2002 DB1_B: see tests/test_contactless_units.py).
CONTACT_RIDGE_PERIOD_PX = 8.1
MIN_PERIOD_PX, MAX_PERIOD_PX = 3.0, 40.0
FFT_BLOCK = 128
# Ridge period over finger width in photos (RidgeBase and lab fingertips: 0.026-0.042); the
# period is searched in this range, a weak prior that rules out harmonics and skin texture.
PERIOD_PER_WIDTH = (0.022, 0.050)
MIN_AREA_FRACTION = 0.02
MIN_MASK_CONTRAST = 8.0  # grey levels (or Cr levels) between finger and background
CLIPPED_LEVEL = 250
# Kept length of the finger from its tip, in finger widths: the distal phalanx.
TIP_LENGTH_WIDTHS = 1.5


@dataclass(frozen=True)
class Options:
    mirror: bool = True
    invert: bool = True
    tip_length_widths: float = TIP_LENGTH_WIDTHS
    clahe_clip: float = 2.0
    flatten_sigma_periods: float = 2.0
    unwrap: bool = True


@dataclass(frozen=True)
class Fingertip:
    """The contact-like impression and what was measured on the way (for the quality gate)."""

    image: np.ndarray  # uint8, 500 ppi (estimated), tip up, dark ridges on white
    mask: np.ndarray  # bool, same shape: the finger
    ridge_period_px: float  # in the photo, searched where the finger's width allows
    free_period_px: float  # the strongest period anywhere in range (cross-check)
    scale: float  # photo pixels -> 500 ppi pixels
    width_px: float  # finger width in the photo
    angle_deg: float  # rotation applied
    area_fraction: float  # share of the photo the finger covers
    clarity: float  # RidgeSpectrum.clarity
    clipped_fraction: float  # finger pixels clipped white in the grey image (glare)
    brightness: float  # median finger grey level, 0-255
    region: tuple[int, int, int, int]  # the finger in the photo: left, top, right, bottom

    @property
    def scale_agrees(self) -> bool:
        """The ridge period found within the width's range is the strongest one overall."""
        return abs(self.free_period_px - self.ridge_period_px) <= 0.15 * self.ridge_period_px


def grey_of(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float32)
    rgb = image[..., :3].astype(np.float32)
    grey: np.ndarray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return grey


def finger_mask(image: np.ndarray) -> np.ndarray:
    """The largest skin (colour image) or bright (grey image) region, holes filled."""
    if image.ndim == 3 and _has_colour(image):
        cr = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2YCrCb)[..., 1]
        channel = cv2.GaussianBlur(cr, (0, 0), 3)
    else:
        grey = np.clip(grey_of(image), 0, 255).astype(np.uint8)
        channel = cv2.GaussianBlur(grey, (0, 0), 5)
    _, binary = cv2.threshold(channel, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    inside = binary > 0
    if inside.all() or not inside.any():
        return np.zeros(inside.shape, dtype=bool)
    if float(channel[inside].mean()) - float(channel[~inside].mean()) < MIN_MASK_CONTRAST:
        return np.zeros(inside.shape, dtype=bool)  # no finger stands out of the background
    return largest_region(inside)


def _has_colour(image: np.ndarray) -> bool:
    rgb = image[::4, ::4, :3].astype(np.int16)
    return bool(np.abs(rgb[..., 0] - rgb[..., 1]).mean() > 3)


def largest_region(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return np.zeros(mask.shape, dtype=bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region: np.ndarray = (np.asarray(labels) == biggest).astype(np.uint8)
    filled = region.copy()
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


@dataclass(frozen=True)
class RidgeSpectrum:
    """Power of the finger's ridge pattern by spatial frequency, block by block."""

    by_block: np.ndarray  # blocks x radius (cycles per block): power, frequency-weighted
    block: int

    @property
    def blocks(self) -> int:
        """Blocks inside the finger that were measured."""
        return int(self.by_block.shape[0])

    @property
    def radial(self) -> np.ndarray:
        """The blocks' power summed, by radius."""
        summed: np.ndarray = self.by_block.sum(axis=0)
        return summed

    def peak_period(self, low_px: float = MIN_PERIOD_PX, high_px: float = MAX_PERIOD_PX) -> float:
        """Median over the blocks of each one's strongest ridge period between the two
        periods; 0 if nothing was measured. The median of the blocks' peaks, not the peak of
        their sum: the ridge period varies over a finger, and the summed spectrum's peak jumps
        between the core's and the sides' periods from one view of a finger to the next (lab
        set: 0.050 against 0.084 spread of log scale between the shots of one finger)."""
        periods = [_peak_period(row, self.block, low_px, high_px) for row in self.by_block]
        found = [period for period in periods if period > 0]
        return float(np.median(found)) if found else 0.0

    def clarity(self, period: float) -> float:
        """Share of the pattern's power (beyond the coarse shading) within +-30% of the ridge
        frequency: high for sharp ridges, low for a blurred or noisy capture."""
        if not self.blocks or period <= 0:
            return 0.0
        radial = self.radial
        radius = np.arange(radial.size)
        ridge = self.block / period
        band = (radius >= 0.7 * ridge) & (radius <= 1.3 * ridge)
        total = float(radial[radius >= 0.4 * ridge].sum())
        return float(radial[band].sum() / total) if total > 0 else 0.0


def _peak_period(profile: np.ndarray, block: int, low_px: float, high_px: float) -> float:
    """Period (pixels) of the strongest frequency of one profile between the two periods,
    refined by a parabola through the peak; 0 where the range is empty or holds no power."""
    low = max(2, int(np.ceil(block / high_px)))
    high = min(int(block / low_px), profile.size - 2)
    if high < low or not profile[low : high + 1].any():
        return 0.0
    peak = low + int(np.argmax(profile[low : high + 1]))
    left, centre, right = profile[peak - 1], profile[peak], profile[peak + 1]
    curvature = left - 2 * centre + right
    offset = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    return float(block / (peak + np.clip(offset, -0.5, 0.5)))


def ridge_spectrum(grey: np.ndarray, mask: np.ndarray, block: int = FFT_BLOCK) -> RidgeSpectrum:
    """Radial power spectra of the Hann-windowed blocks that lie inside the mask."""
    flat = grey - cv2.GaussianBlur(grey, (0, 0), block / 8)
    window = np.outer(np.hanning(block), np.hanning(block)).astype(np.float32)
    radius = _radius_grid(block).ravel()
    # Ridges sit on a 1/f background: weigh by frequency so the ridge peak stands out.
    weight = np.arange(block // 2)
    rows = []
    step = block // 2
    height, width = grey.shape
    for top in range(0, height - block + 1, step):
        for left in range(0, width - block + 1, step):
            if mask[top : top + block, left : left + block].mean() < 0.9:
                continue
            patch = flat[top : top + block, left : left + block]
            power = np.abs(np.fft.fft2((patch - patch.mean()) * window)) ** 2
            rows.append(np.bincount(radius, power.ravel(), minlength=block)[: block // 2] * weight)
    by_block = np.array(rows, dtype=np.float64).reshape(len(rows), block // 2)
    return RidgeSpectrum(by_block, block)


def _radius_grid(block: int) -> np.ndarray:
    freq = np.fft.fftfreq(block) * block
    radius: np.ndarray = np.rint(np.hypot(*np.meshgrid(freq, freq))).astype(np.int64)
    return radius


def ridge_period(grey: np.ndarray, mask: np.ndarray, block: int = FFT_BLOCK) -> float:
    """Dominant ridge period (pixels) inside the mask; 0 where no block lies inside it."""
    return ridge_spectrum(grey, mask, block).peak_period()


def finger_axis(mask: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Angle (degrees) of the finger's long axis, the finger width (pixels) and the centre."""
    ys, xs = np.nonzero(mask)
    points = np.column_stack((xs, ys)).astype(np.float64)
    centre = points.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((points - centre).T))
    major = vectors[:, 1]
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    minor = (points - centre) @ vectors[:, 0]
    width = float(np.percentile(minor, 98) - np.percentile(minor, 2))
    return angle, width, centre


def contactless_to_contact(image: np.ndarray, options: Options = Options()) -> Fingertip | None:
    """The contact-like impression of the one finger in the photo; None without a finger."""
    grey = grey_of(image)
    mask = finger_mask(image)
    if mask.sum() < MIN_AREA_FRACTION * mask.size:
        return None
    angle, width, centre = finger_axis(mask)
    spectrum = ridge_spectrum(grey, mask)
    low, high = PERIOD_PER_WIDTH[0] * width, PERIOD_PER_WIDTH[1] * width
    period = spectrum.peak_period(max(MIN_PERIOD_PX, low), min(MAX_PERIOD_PX, high))
    if period <= 0:
        return None
    scale = CONTACT_RIDGE_PERIOD_PX / period
    rotation = _tip_up_rotation(mask, angle, centre)
    warped_grey, warped_mask = _warp(grey, mask, centre, rotation, scale, options.mirror)
    if options.unwrap:
        warped_grey, warped_mask = unwrap_cylinder(warped_grey, warped_mask)
    warped_mask = _keep_tip(warped_mask, width * scale, options.tip_length_widths)
    impression = _contact_like(warped_grey, warped_mask, CONTACT_RIDGE_PERIOD_PX, options)
    impression, warped_mask = _crop_to(impression, warped_mask)
    return Fingertip(
        image=impression,
        mask=warped_mask,
        ridge_period_px=period,
        free_period_px=spectrum.peak_period(),
        scale=scale,
        width_px=width,
        angle_deg=rotation,
        area_fraction=float(mask.mean()),
        clarity=spectrum.clarity(period),
        clipped_fraction=_clipped_fraction(grey, mask),
        brightness=float(np.median(grey[mask])),
        region=_bounding_box(mask),
    )


def _bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.nonzero(mask.any(axis=1))[0]
    cols = np.nonzero(mask.any(axis=0))[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _clipped_fraction(grey: np.ndarray, mask: np.ndarray) -> float:
    """Share of the finger clipped white in the grey image the ridges are read from. Not the
    brightest channel: a torch saturates the red channel of skin while green and blue keep
    the ridges (in 26 of the 112 RidgeBase four-finger crops, up to 97% of the finger), and
    those crops matched their mates as well as any; glare whitens every channel."""
    pixels = grey[mask]
    return float(np.mean(pixels >= CLIPPED_LEVEL)) if pixels.size else 0.0


def _tip_up_rotation(mask: np.ndarray, angle: float, centre: np.ndarray) -> float:
    """Rotation (degrees, counter-clockwise as viewed) that brings the tip to the top: the
    tip is the end of the long axis where the finger is narrower."""
    ys, xs = np.nonzero(mask)
    direction = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    along = (np.column_stack((xs, ys)) - centre) @ direction
    across = (np.column_stack((xs, ys)) - centre) @ np.array([-direction[1], direction[0]])
    lo, hi = np.percentile(along, [2, 98])
    span = hi - lo
    near_lo = np.abs(across[along < lo + 0.15 * span])
    near_hi = np.abs(across[along > hi - 0.15 * span])
    tip_at_hi = _spread(near_hi) < _spread(near_lo)
    # Image y points down: an axis at ``angle`` rotated by (angle + 90) points up.
    tip_angle = angle if tip_at_hi else angle + 180.0
    return tip_angle + 90.0


def _spread(values: np.ndarray) -> float:
    return float(np.percentile(values, 90)) if values.size else 0.0


def _warp(
    grey: np.ndarray,
    mask: np.ndarray,
    centre: np.ndarray,
    rotation: float,
    scale: float,
    mirror: bool,
) -> tuple[np.ndarray, np.ndarray]:
    height, width = grey.shape
    side = int(np.ceil(np.hypot(height, width) * scale)) + 8
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), rotation, scale)
    matrix[:, 2] += np.array([side / 2, side / 2]) - centre
    if mirror:  # the scanner's view of the pad is the mirror image of the camera's
        flip = np.array([[-1.0, 0.0, side], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        matrix = (flip @ np.vstack((matrix, [0, 0, 1])))[:2]
    warped = cv2.warpAffine(grey, matrix, (side, side), flags=cv2.INTER_AREA)
    warped_mask = cv2.warpAffine(
        mask.astype(np.uint8), matrix, (side, side), flags=cv2.INTER_NEAREST
    )
    return warped, warped_mask.astype(bool)


# The finger's sides beyond this share of its half-width are too foreshortened to unroll
# (0.92 -> 0.96: lab set 26.3% -> 24.6% EER, RidgeBase unchanged; 0.985 costs RidgeBase
# contactless-contact 7.5% -> 10.0%).
UNWRAP_LIMIT = 0.96


def unwrap_cylinder(grey: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unroll a tip-up finger seen as a cylinder: each row's column becomes its arc length
    around the finger, so the foreshortened sides are stretched back (as a rolled print)."""
    rows = np.nonzero(mask.any(axis=1))[0]
    if rows.size < 8:
        return grey, mask
    height, width = grey.shape
    left = np.full(height, np.nan)
    right = np.full(height, np.nan)
    for row in rows:
        cols = np.nonzero(mask[row])[0]
        left[row], right[row] = cols[0], cols[-1]
    valid = ~np.isnan(left)
    smooth = np.array([_smoothed(left, valid), _smoothed(right, valid)])
    centre = smooth.mean(axis=0)
    radius = np.maximum((smooth[1] - smooth[0]) / 2.0, 1.0)
    reach = radius * np.arcsin(UNWRAP_LIMIT)
    middle = width / 2.0
    arc = np.arange(width, dtype=np.float64) - middle
    map_x = centre[:, None] + radius[:, None] * np.sin(
        np.clip(arc[None, :] / radius[:, None], -np.pi / 2, np.pi / 2)
    )
    inside = valid[:, None] & (np.abs(arc)[None, :] <= reach[:, None])
    map_x = np.where(inside, map_x, -1.0).astype(np.float32)
    map_y = np.repeat(np.arange(height, dtype=np.float32)[:, None], width, axis=1)
    unrolled = cv2.remap(grey, map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0)
    return unrolled, inside & (map_x >= 0)


def _smoothed(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    filled = np.interp(np.arange(values.size), np.nonzero(valid)[0], values[valid])
    smooth: np.ndarray = cv2.GaussianBlur(filled.reshape(-1, 1), (1, 0), 9).ravel()
    return smooth


def _keep_tip(mask: np.ndarray, width_px: float, length_widths: float) -> np.ndarray:
    rows = np.nonzero(mask.any(axis=1))[0]
    if not rows.size or length_widths <= 0:
        return mask
    kept = mask.copy()
    kept[int(rows[0] + length_widths * width_px) :] = False
    return kept


def _contact_like(
    grey: np.ndarray, mask: np.ndarray, period: float, options: Options
) -> np.ndarray:
    sigma = options.flatten_sigma_periods * period
    filled = np.where(mask, grey, grey[mask].mean() if mask.any() else 0.0).astype(np.float32)
    background = cv2.GaussianBlur(filled, (0, 0), sigma)
    flat: np.ndarray = cv2.GaussianBlur(filled / np.maximum(background, 1.0), (0, 0), 0.6)
    inside = flat[mask] if mask.any() else flat.ravel()
    lo, hi = np.percentile(inside, [1, 99])
    stretched = np.clip((flat - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    clahe = cv2.createCLAHE(clipLimit=options.clahe_clip, tileGridSize=(8, 8))
    result = clahe.apply(stretched)
    if options.invert:
        result = 255 - result
    eroded = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    result[~eroded] = 255
    out: np.ndarray = result
    return out


def _crop_to(
    image: np.ndarray, mask: np.ndarray, margin: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    rows = np.nonzero(mask.any(axis=1))[0]
    cols = np.nonzero(mask.any(axis=0))[0]
    if not rows.size:
        return image, mask
    top, bottom = max(0, rows[0] - margin), min(image.shape[0], rows[-1] + margin + 1)
    left, right = max(0, cols[0] - margin), min(image.shape[1], cols[-1] + margin + 1)
    return image[top:bottom, left:right], mask[top:bottom, left:right]
