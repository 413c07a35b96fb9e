from mednext_fw.trainers.logger import TrainingLogger


def test_log_appends_and_plot_is_png(tmp_path):
    log = TrainingLogger(tmp_path / "training_log.txt", echo=False)
    log.log("first")
    for e in range(3):
        log.record(train_loss=1 - e * 0.1, val_loss=1.1, metric=0.5 + e * 0.1, ema_metric=0.5, lr=1e-3, epoch_time=2)
    state = log.state_dict()
    log2 = TrainingLogger(tmp_path / "training_log.txt", echo=False)
    log2.load_state_dict(state)
    log2.log("second")
    text = (tmp_path / "training_log.txt").read_text().splitlines()
    assert text[0].endswith("first") and text[1].endswith("second")
    log2.plot(tmp_path / "progress.png")
    data = (tmp_path / "progress.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_disabled_logger_writes_nothing(tmp_path):
    log = TrainingLogger(tmp_path / "training_log.txt", enabled=False, echo=False)
    log.log("x")
    log.record(train_loss=1)
    log.plot(tmp_path / "progress.png")
    assert list(tmp_path.iterdir()) == []
