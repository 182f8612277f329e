"""Goldens for @webtune/gguf, written with the `gguf` Python package (llama.cpp's gguf-py).

1. quants.gguf: for each block type webtune reads, random but valid blocks (`<TYPE>.blocks`,
   stored in that type) and gguf.quants' dequantization of them (`<TYPE>.dequantized`, F32);
   for the types gguf-py can quantize, its quantization of a fixed input (`<TYPE>.of_input`,
   input in `input`). webtune's dequantizer must reproduce the dequantized values exactly and
   its Q8_0/Q4_0/Q5_0 quantizers the blocks.
2. stories260K-python.gguf (in packages/nn, whose test loads it): the stories260K Hugging Face model converted by this script with
   gguf-py's writer the way llama.cpp's convert_hf_to_gguf.py does (llama architecture, q/k rows
   permuted to the interleaved RoPE layout, matrices in F16, the SentencePiece vocabulary with
   its scores from llama2.c's tok512.bin), plus stories260K-python-logits.json: the Hugging Face
   model's logits (weights rounded to f16 as stored) for fixed token ids and the HF tokenizer's
   ids for a fixed text.
3. llama3-rope-freqs-python.gguf (packages/nn): a tiny random Llama with Llama 3 RoPE scaling
   (factor 8, low/high frequency factors 1 and 4, original context 32 so that the scaled
   frequencies act inside 16 positions), written as convert_hf_to_gguf.py writes Llama 3 models:
   the per-frequency factors as the `rope_freqs` tensor, no rope.scaling keys; plus
   llama3-rope-freqs-python-logits.json: the Transformers model's logits (F32 weights).

Run: /work/venv/bin/python tools/golden/gguf_fixtures.py
"""

import json
import struct
from pathlib import Path

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as T
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "packages" / "gguf" / "src" / "__fixtures__"
NN_OUT = ROOT / "packages" / "nn" / "src" / "__fixtures__" / "gguf"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "models"
rng = np.random.default_rng(15)


def random_blocks(qtype: T, count: int) -> np.ndarray:
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(count, type_size), dtype=np.uint8)
    halves = lambda n: rng.uniform(0.001, 0.05, size=(count, n)).astype(np.float16).view(np.uint8)
    # Scale fields get finite positive f16 values; everything else stays random.
    if qtype in (T.Q4_0, T.Q5_0, T.Q8_0):
        raw[:, 0:2] = halves(1)
    elif qtype in (T.Q4_1, T.Q5_1, T.Q4_K, T.Q5_K):
        raw[:, 0:4] = halves(2)
    elif qtype == T.Q6_K:
        raw[:, 208:210] = halves(1)
    return raw


def write_quants() -> None:
    writer = gguf.GGUFWriter(str(OUT / "quants.gguf"), "webtune-golden")
    values = rng.standard_normal(8 * 256).astype(np.float32) * np.repeat(rng.uniform(0.01, 2, 8 * 8), 32).astype(np.float32)
    values[:32] = 0  # an all-zero block
    writer.add_tensor("input", values)
    for qtype in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q6_K):
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        blocks = random_blocks(qtype, 2048 // block_size)
        name = qtype.name
        writer.add_tensor(f"{name}.blocks", blocks.reshape(1, -1), raw_dtype=qtype)
        dequantized = gguf.quants.dequantize(blocks.reshape(1, -1), qtype).reshape(-1).astype(np.float32)
        writer.add_tensor(f"{name}.dequantized", dequantized)
        if qtype in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
            quantized = gguf.quants.quantize(values.reshape(1, -1), qtype)
            writer.add_tensor(f"{name}.of_input", quantized, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def permute(weights: np.ndarray, heads: int) -> np.ndarray:
    # convert_hf_to_gguf.py's LlamaModel.permute: rotate-half rows -> interleaved pairs.
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def read_llama2c_vocab(path: Path):
    data = path.read_bytes()
    offset = 4
    pieces, scores = [], []
    while offset < len(data):
        score, length = struct.unpack_from("<fi", data, offset)
        offset += 8
        pieces.append(data[offset : offset + length].decode("utf-8", errors="replace"))
        scores.append(score)
        offset += length
    return pieces, scores


def write_stories() -> None:
    source = FIXTURES / "stories260K-hf"
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    config = model.config
    writer = gguf.GGUFWriter(str(NN_OUT / "stories260K-python.gguf"), "llama")
    writer.add_name("stories260K")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_rope_freq_base(json.loads((source / "config.json").read_text())["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    pieces, scores = read_llama2c_vocab(FIXTURES / "stories260K-llama2c" / "tok512.bin")
    tokens, types = [], []
    for index, piece in enumerate(pieces):
        if index in (0, 1, 2):
            tokens.append(["<unk>", "<s>", "</s>"][index])
            types.append(gguf.TokenType.UNKNOWN if index == 0 else gguf.TokenType.CONTROL)
        elif piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
            tokens.append(piece)
            types.append(gguf.TokenType.BYTE)
        else:
            tokens.append(piece.replace(" ", "\u2581"))
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template("{% for message in messages %}{{ message['content'] }}{% endfor %}")
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
    }
    layer_names = {
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name == "lm_head.weight" and config.tie_word_embeddings:
                continue
            data = tensor.numpy()
            if name.startswith("model.layers."):
                _, _, layer, *rest = name.split(".")
                module = ".".join(rest[:-1])
                gguf_name = f"blk.{layer}.{layer_names[module]}.{rest[-1]}"
            else:
                gguf_name = names[name]
            if name.endswith("q_proj.weight"):
                data = permute(data, config.num_attention_heads)
            if name.endswith("k_proj.weight"):
                data = permute(data, config.num_key_value_heads)
            if data.ndim == 2:
                data = data.astype(np.float16)
                tensor.copy_(tensor.half().float())  # the reference runs on the stored values
            writer.add_tensor(gguf_name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    ids = [1, 403, 407, 261, 378, 280, 500, 13, 47, 300]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    tokenizer = AutoTokenizer.from_pretrained(source)
    text = "Once upon a time, there was a little girl named Lily. She liked to play."
    (NN_OUT / "stories260K-python-logits.json").write_text(
        json.dumps(
            {
                "ids": ids,
                "logits": [[round(float(v), 6) for v in row] for row in logits],
                "text": text,
                "text_ids": tokenizer(text)["input_ids"],
            }
        )
    )


def llama3_factors(scaling: dict, theta: float, dim: int) -> list:
    """Original / scaled frequency of each rotary pair under Llama 3's scaling (rope_freqs)."""
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    original = scaling["original_max_position_embeddings"]
    out = []
    for i in range(dim // 2):
        wavelength = 2 * np.pi * theta ** (2 * i / dim)
        if wavelength < original / high:
            out.append(1.0)
        elif wavelength > original / low:
            out.append(factor)
        else:
            smooth = (original / wavelength - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return out


def write_llama3_rope_freqs() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    scaling = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=32)
    theta = 10000.0
    config = LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=64, max_position_embeddings=256, rms_norm_eps=1e-5,
                         rope_theta=theta, rope_scaling=scaling, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2)
    torch.manual_seed(3)
    model = LlamaForCausalLM(config).eval()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.copy_(1 + 0.1 * noise if "norm" in name else 0.3 * noise)
    head_dim = config.hidden_size // config.num_attention_heads
    writer = gguf.GGUFWriter(str(NN_OUT / "llama3-rope-freqs-python.gguf"), "llama")
    writer.add_name("tiny-llama3")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(theta)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tensor("rope_freqs.weight", np.array(llama3_factors(scaling, theta, head_dim), dtype=np.float32))
    layer_names = {
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    for name, tensor in model.state_dict().items():
        data = tensor.numpy().astype(np.float32)
        if name.startswith("model.layers."):
            _, _, layer, *rest = name.split(".")
            gguf_name = f"blk.{layer}.{layer_names['.'.join(rest[:-1])]}.{rest[-1]}"
        else:
            gguf_name = names[name]
        if name.endswith("q_proj.weight"):
            data = permute(data, config.num_attention_heads)
        if name.endswith("k_proj.weight"):
            data = permute(data, config.num_key_value_heads)
        writer.add_tensor(gguf_name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    ids = [1, 17, 42, 5, 63, 8, 8, 30, 11, 2, 50, 7, 33, 21, 4, 59, 3, 9, 27, 17, 19, 57, 44, 0]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    (NN_OUT / "llama3-rope-freqs-python-logits.json").write_text(
        json.dumps({"ids": ids, "rope_scaling": scaling,
                    "logits": [[round(float(v), 6) for v in row] for row in logits]})
    )


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    NN_OUT.mkdir(parents=True, exist_ok=True)
    write_quants()
    write_stories()
    write_llama3_rope_freqs()
    for path in [*sorted(OUT.iterdir()), *sorted(NN_OUT.iterdir())]:
        print(path.name, path.stat().st_size)
