// wharf chat: a plain WebSocket to /ws/chat on the same host. Every message
// is a small JSON object {name, text}; the server relays each one to every
// connected browser, this one included. Text is rendered with textContent
// only, never as HTML.
(function () {
  'use strict';
  const list = document.getElementById('messages');
  const form = document.getElementById('form');
  const nameIn = document.getElementById('name');
  const textIn = document.getElementById('text');
  const sendBtn = document.getElementById('send');
  const status = document.getElementById('status');
  let ws = null;
  let retry = 500;

  nameIn.value = localStorage.getItem('wharf-chat-name') || '';

  function setStatus(text, cls) {
    status.textContent = text;
    status.className = 'status ' + cls;
  }

  function show(name, text, cls) {
    const li = document.createElement('li');
    if (cls) li.className = cls;
    const who = document.createElement('span');
    who.className = 'name';
    who.textContent = name;
    const what = document.createElement('span');
    what.className = 'text';
    what.textContent = text;
    li.append(who, what);
    list.append(li);
    list.scrollTop = list.scrollHeight;
  }

  function connect() {
    const proto = location.protocol === 'https:' ? 'wss://' : 'ws://';
    ws = new WebSocket(proto + location.host + '/ws/chat');
    setStatus('connecting…', 'connecting');
    ws.onopen = function () {
      retry = 500;
      setStatus('connected', 'open');
      sendBtn.disabled = false;
    };
    ws.onmessage = function (ev) {
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (m && typeof m.name === 'string' && typeof m.text === 'string')
        show(m.name, m.text, 'msg');
    };
    ws.onclose = function (ev) {
      sendBtn.disabled = true;
      setStatus('disconnected (' + ev.code + '), retrying…', 'closed');
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    const name = nameIn.value.trim();
    const text = textIn.value.trim();
    if (!name || !text || !ws || ws.readyState !== WebSocket.OPEN) return;
    localStorage.setItem('wharf-chat-name', name);
    ws.send(JSON.stringify({ name: name, text: text }));
    textIn.value = '';
    textIn.focus();
  });

  connect();
})();
