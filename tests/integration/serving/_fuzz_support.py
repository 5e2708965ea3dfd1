"""A seeded generator of malformed v2 inference requests: mutated JSON bodies and binary-extension
bodies (``inference-header-content-length`` plus raw tensor bytes) built from one valid request.

Deterministic: the same seed gives the same bodies, so a failure can be replayed by its index.
"""

from __future__ import annotations

import copy
import json
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ODD_VALUES: list[Any] = [
    None, 0, -1, 1.5, 1e308, -1e308, 2**63, -(2**63) - 1, True, "", "x", "🙂", [], [[]], {},
    {"a": 1}, [1, "x"], [None], "NaN", 10**30,
]  # fmt: skip
ODD_SHAPES: list[Any] = [
    [], [-1, 30], [10**12, 30], [2**63, 30], [1, -30], [0, 30], [1, 30, 1], [1], ["1", "30"],
    [1.5, 30], [None, 30], [1, 2**40], [-(2**31), 30], [3, 10],
]  # fmt: skip
ODD_DATATYPES: list[Any] = ["FP99", "", "BOOL", "fp32", "BYTES", "FP16", "INT8", 5, None, "UINT64"]
ODD_LENGTHS = ["abc", "-1", "0", "1e3", "", "12a", "99999999999999999999", "0x10", "+5"]


@dataclass(frozen=True)
class Malformed:
    """One request to send: body bytes and the headers that go with it."""

    kind: str
    body: bytes
    headers: dict[str, str]


class RequestFuzzer:
    """Mutations of ``valid`` (a v2 request dict with one or two input tensors)."""

    def __init__(self, valid: dict[str, Any], seed: int) -> None:
        self.valid = valid
        self.rng = random.Random(seed)

    def requests(self, n_json: int, n_binary: int) -> Iterator[Malformed]:
        for _ in range(n_json):
            yield self.json_request()
        for _ in range(n_binary):
            yield self.binary_request()

    # -- JSON ---------------------------------------------------------------------------------
    def json_request(self) -> Malformed:
        mutate = self.rng.choice(
            [self.drop_key, self.odd_field, self.odd_shape, self.odd_datatype, self.odd_data]
        )
        body = copy.deepcopy(self.valid)
        mutate(body)
        text = json.dumps(body, allow_nan=True).encode()
        text = self.rng.choice([self.keep, self.keep, self.truncate, self.flip_bytes])(text)
        content_type = self.rng.choice(["application/json", "application/json", "text/plain", ""])
        headers = {"content-type": content_type} if content_type else {}
        return Malformed(f"json:{mutate.__name__}", text, headers)

    def keep(self, data: bytes) -> bytes:
        return data

    def truncate(self, data: bytes) -> bytes:
        return data[: self.rng.randrange(len(data))]

    def flip_bytes(self, data: bytes) -> bytes:
        out = bytearray(data)
        for _ in range(self.rng.randint(1, 4)):
            out[self.rng.randrange(len(out))] = self.rng.choice(
                [0x00, 0x80, 0xFF, 0xC3, 0x22, 0x5D]
            )
        return bytes(out)

    def tensor(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("inputs")
        return self.rng.choice(inputs) if isinstance(inputs, list) and inputs else {}

    def drop_key(self, body: dict[str, Any]) -> None:
        if self.rng.random() < 0.3:
            body.pop("inputs", None)
            return
        self.tensor(body).pop(self.rng.choice(["name", "shape", "datatype", "data"]), None)

    def odd_field(self, body: dict[str, Any]) -> None:
        where = self.rng.choice(["inputs", "outputs", "id", "parameters", "tensor"])
        value = self.rng.choice(ODD_VALUES)
        if where == "tensor":
            key = self.rng.choice(["name", "shape", "datatype", "data", "parameters"])
            self.tensor(body)[key] = value
        elif where == "outputs":
            body["outputs"] = self.rng.choice([value, [{"name": value}], [value]])
        else:
            body[where] = value

    def odd_shape(self, body: dict[str, Any]) -> None:
        self.tensor(body)["shape"] = self.rng.choice(ODD_SHAPES)

    def odd_datatype(self, body: dict[str, Any]) -> None:
        self.tensor(body)["datatype"] = self.rng.choice(ODD_DATATYPES)

    def odd_data(self, body: dict[str, Any]) -> None:
        tensor = self.tensor(body)
        data = list(tensor.get("data") or [])
        choice = self.rng.randrange(4)
        if choice == 0 and data:
            data[self.rng.randrange(len(data))] = self.rng.choice(ODD_VALUES)
        elif choice == 1:
            data = data[: self.rng.randrange(len(data) + 1)]
        elif choice == 2:
            data = [data, data]
        else:
            data = data * self.rng.randint(2, 5)
        tensor["data"] = data

    # -- binary extension ---------------------------------------------------------------------
    def binary_request(self) -> Malformed:
        body = copy.deepcopy(self.valid)
        tensor = self.tensor(body)
        raw = self.raw_bytes(tensor)
        tensor.pop("data", None)
        size: Any = len(raw)
        what = self.rng.randrange(5)
        if what == 0:
            size = self.rng.choice([-1, 0, len(raw) + 1, len(raw) - 1, 10**12, "x", None, 3.5])
        elif what == 1:
            raw = raw[: self.rng.randrange(len(raw) + 1)]
        elif what == 2:
            self.rng.choice([self.odd_shape, self.odd_datatype, self.drop_key, self.odd_field])(
                body
            )
        tensor["parameters"] = {"binary_data_size": size}
        header = json.dumps(body).encode()
        length = str(len(header))
        if what == 3:
            length = self.rng.choice([*ODD_LENGTHS, str(len(header) - 2), str(len(header) + 5)])
        if what == 4:
            header = self.flip_bytes(header)
        headers = {"inference-header-content-length": length}
        headers["content-type"] = "application/octet-stream"
        return Malformed(f"binary:{what}", header + raw, headers)

    def raw_bytes(self, tensor: dict[str, Any]) -> bytes:
        data = tensor.get("data") or []
        if tensor.get("datatype") == "BYTES":
            encoded = [str(item).encode() for item in data]
            return b"".join(struct.pack("<I", len(item)) + item for item in encoded)
        return struct.pack(f"<{len(data)}f", *[float(value) for value in data])
