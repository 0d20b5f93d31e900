"""Korean IT words the morpheme analyser must keep whole (single words only:
a compound such as 가상머신 is left to Kiwi, so that it still matches "가상 머신").

Kiwi's model cuts unfamiliar loanwords differently depending on what surrounds
them ("도커 데몬" once came out as 도/크/데모, "메트릭으로" as 메/트릭, "스토리지는"
as 스토리/지), so a question and a note that use the same word would not
share a token. Registering these words as nouns makes the cut stable. Changing
this list changes the index tokens: bump lexical.LEXICAL_VERSION.
"""

NOUNS = (
    # containers, Kubernetes, OpenShift
    "도커", "데몬", "컨테이너", "쿠버네티스", "오픈시프트", "런타임", "오케스트레이션", "레지스트리",
    "리포지토리", "레포지토리", "빌드", "이미지", "파드", "노드", "클러스터", "디플로이먼트",
    "레플리카", "네임스페이스", "매니페스트", "인그레스", "컨트롤러", "오퍼레이터", "경량",
    "스케줄러", "헬름", "차트", "릴리즈", "볼륨", "퍼시스턴트", "컴포즈", "서버리스", "메시",
    "스케일링", "워크로드", "사이드카",
    # observability
    "모니터링", "메트릭", "대시보드", "그라파나", "프로메테우스", "엘라스틱서치", "키바나",
    "트레이싱", "로깅", "알림", "알람", "에이전트", "익스포터", "트랜잭션",
    # general software and operations
    "스토리지", "파이프라인", "프레임워크", "플랫폼", "애플리케이션", "어플리케이션",
    "인프라", "아키텍처", "아키텍쳐", "컴포넌트", "템플릿", "플러그인", "라이브러리",
    "데이터베이스", "스키마", "쿼리", "캐시", "세션", "토큰", "인증서", "스냅샷", "백업", "업그레이드",
    "업데이트", "재시작", "이점", "프로비저닝", "테라폼", "앤서블",
    "깃허브", "젠킨스", "스크립트", "워크플로",
    # Linux
    "리눅스", "커널", "프로세스", "스레드", "디렉터리", "디렉토리", "파티션", "마운트",
    "패키지", "셸", "쉘", "시그널", "포그라운드", "백그라운드", "크론", "저널",
    # networking and cloud
    "네트워크", "네트워킹", "서브넷", "게이트웨이", "라우팅", "라우터", "스위치", "방화벽",
    "밸런서", "프록시", "트래픽", "패킷", "프로토콜", "포트", "호스트", "도메인", "엔드포인트",
    "피어링", "클라우드", "인스턴스", "하이퍼바이저", "테넌트", "리소스", "온프레미스", "하이브리드",
    "애저", "오픈스택", "가상화",
)
