// Live user count over a WebSocket (served by ASGI servers; silently absent under WSGI).
(function () {
  var target = document.getElementById("live-count");
  if (!target || !("WebSocket" in window)) return;
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";
  try {
    var socket = new WebSocket(scheme + location.host + "/ws/users/count");
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      target.textContent = data.users + (data.users === 1 ? " user" : " users");
    };
  } catch (e) { /* no WebSocket support on this server */ }
})();
