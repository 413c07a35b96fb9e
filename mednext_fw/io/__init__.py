"""Ground floor: readers/writers, the dataset.json schema, dataset lookup, atomic writes."""
from mednext_fw.io.atomic import atomic_path, write_json_atomic, save_npy_atomic
from mednext_fw.io.dataset_json import DatasetJson, DatasetJsonError
from mednext_fw.io.image_io import ImageProperties, ImageReadError, read_image, read_images, read_seg, write_seg

__all__ = [
    "atomic_path", "write_json_atomic", "save_npy_atomic",
    "DatasetJson", "DatasetJsonError",
    "ImageProperties", "ImageReadError", "read_image", "read_images", "read_seg", "write_seg",
]
