"""Drives Tally's remote control with obsws-python (PyPI), which speaks JSON without asking
for a subprotocol, as tests/remote.rs asks: `python json_client.py HOST PORT PASSWORD`.
Prints one JSON object with what it saw; the Rust test checks it."""

import json
import sys
import threading
import time

import obsws_python as obs

host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
report = {"events": []}
heard = threading.Condition()


def on_input_mute_state_changed(data):
    with heard:
        report["events"].append(["InputMuteStateChanged", data.input_name, data.input_muted])
        heard.notify_all()


def on_scene_item_enable_state_changed(data):
    with heard:
        report["events"].append(
            ["SceneItemEnableStateChanged", data.scene_name, data.scene_item_id, data.scene_item_enabled]
        )
        heard.notify_all()


events = obs.EventClient(host=host, port=port, password=password, timeout=10)
events.callback.register([on_input_mute_state_changed, on_scene_item_enable_state_changed])
requests = obs.ReqClient(host=host, port=port, password=password, timeout=10)

report["scenes"] = [scene["sceneName"] for scene in requests.get_scene_list().scenes]
report["program"] = requests.get_current_program_scene().scene_name
requests.set_input_mute("clip", True)
report["muted"] = requests.get_input_mute("clip").input_muted
report["toggled"] = requests.toggle_input_mute("clip").input_muted
item = requests.get_scene_item_id("A", "clip").scene_item_id
requests.set_scene_item_enabled("A", item, False)
report["item"] = [item, requests.get_scene_item_enabled("A", item).scene_item_enabled]
try:
    requests.send("GetInputMute", {"inputName": "red"})
    report["mute_of_a_colour"] = "answered"
except obs.error.OBSSDKRequestError as error:
    report["mute_of_a_colour"] = [error.code, str(error)]

# Events arrive on the event client's own connection: wait for all three, with a deadline.
deadline = time.monotonic() + 20
with heard:
    while len(report["events"]) < 3 and time.monotonic() < deadline:
        heard.wait(deadline - time.monotonic())
events.disconnect()
requests.disconnect()
print(json.dumps(report))
