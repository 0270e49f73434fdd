//! The tch `TokenLoader`: the same tokens as the core loader, the boundaries
//! and labels derived from them, and exact resume through its state.

use std::sync::Arc;

use arrow::array::{Int32Builder, ListBuilder, RecordBatch};
use mosaicrs::loader::ShuffleMode;
use mosaicrs::reader::Dataset;
use mosaicrs::testing::write_batches;
use mosaicrs::tokens::{self, TokenConfig};
use mosaicrs_tch::{TokenLoader, TokenTensors};
use tch::{Device, Kind};

fn dataset(dir: &std::path::Path) -> Arc<Dataset> {
    let mut docs = ListBuilder::new(Int32Builder::new());
    for i in 0..60i32 {
        let len = 1 + (i * 7 + i * i % 13) % 29;
        docs.append_value((0..len).map(|j| Some(i * 1000 + j)));
    }
    let batch = RecordBatch::try_from_iter([("input_ids", Arc::new(docs.finish()) as _)]).unwrap();
    write_batches(dir, &[batch], Default::default()).unwrap();
    Arc::new(Dataset::open(dir).unwrap())
}

fn config() -> TokenConfig {
    TokenConfig {
        seq_len: 16,
        batch_size: 3,
        eos_id: Some(99_999),
        pad_id: Some(99_998),
        drop_last: false,
        seed: 5,
        shuffle: ShuffleMode::Global,
        ..TokenConfig::default()
    }
}

fn ints(t: &tch::Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(&t.to_kind(Kind::Int64).flatten(0, -1)).unwrap()
}

/// The tensors of one batch against the core loader's vectors.
fn check(batch: &TokenTensors, core: &tokens::TokenBatch) {
    assert_eq!(batch.input_ids.size(), [3, 16]);
    assert_eq!(batch.input_ids.kind(), Kind::Int64);
    assert_eq!(ints(&batch.input_ids), core.input_ids);
    assert_eq!(ints(&batch.position_ids), core.position_ids);
    assert_eq!(ints(&batch.lengths), core.lengths);
    assert_eq!(batch.info, core.info);
    // A segment starts wherever the position is 0.
    let mut cu: Vec<i64> = (0..core.position_ids.len() as i64)
        .filter(|&i| core.position_ids[i as usize] == 0)
        .collect();
    cu.push(core.position_ids.len() as i64);
    assert_eq!(batch.cu_seqlens.kind(), Kind::Int);
    assert_eq!(ints(&batch.cu_seqlens), cu);
    let longest = cu.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert_eq!(batch.max_seqlen, longest);
    let labels = ints(batch.labels.as_ref().unwrap());
    for (i, (&label, &id)) in labels.iter().zip(&core.input_ids).enumerate() {
        let real = (i % 16) < core.lengths[i / 16] as usize;
        let first = core.position_ids[i] == 0;
        assert_eq!(label, if real && !first { id } else { -100 }, "token {i}");
    }
}

#[test]
fn tokens_equal_the_core_loader_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    let mut core = tokens::TokenLoader::new(data.clone(), config()).unwrap();
    let mut loader = TokenLoader::new(data.clone(), config(), Device::Cpu)
        .unwrap()
        .with_labels(true);
    let mut all = Vec::new();
    for epoch in 0..2 {
        loader.set_epoch(epoch);
        core.set_epoch(epoch);
        let batches: Vec<TokenTensors> = loader.by_ref().map(Result::unwrap).collect();
        let expected: Vec<tokens::TokenBatch> =
            std::iter::from_fn(|| core.next_batch().unwrap()).collect();
        assert_eq!(batches.len(), expected.len());
        assert!(batches.len() > 4);
        for (b, e) in batches.iter().zip(&expected) {
            check(b, e);
        }
        // The last batch of the epoch is padded (drop_last = false).
        assert!(expected.last().unwrap().input_ids.contains(&99_998));
        all.push(expected);
    }

    // Stop after 3 batches of epoch 1, save, resume in a fresh loader.
    let mut first = TokenLoader::new(data.clone(), config(), Device::Cpu).unwrap();
    first.set_epoch(1);
    for _ in 0..3 {
        first.next_batch().unwrap().unwrap();
    }
    let state = first.state_dict().unwrap();
    let mut resumed = TokenLoader::new(data.clone(), config(), Device::Cpu)
        .unwrap()
        .with_labels(true);
    resumed.load_state_dict(&state).unwrap();
    let rest: Vec<TokenTensors> = resumed.by_ref().map(Result::unwrap).collect();
    assert_eq!(rest.len(), all[1].len() - 3);
    for (b, e) in rest.iter().zip(&all[1][3..]) {
        check(b, e);
    }
    // A state of another column is refused.
    let bad = state.replace("\"input_ids\"", "\"other\"");
    assert_ne!(bad, state);
    assert!(resumed.load_state_dict(&bad).is_err());
}
